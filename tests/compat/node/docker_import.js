// Drives the real node IMGAPI client's adminImportDockerImage: prints what it read as JSON
// ({messages: [...]} from the progress stream, or {error: {statusCode, body}}).
var IMGAPI = require('sdc-clients').IMGAPI;
var url = process.argv[2], repo = process.argv[3], tag = process.argv[4];
var client = new IMGAPI({url: url, agent: false});
client.adminImportDockerImage({repo: repo, tag: tag, public: true}, function (err, res) {
  if (err) {
    console.log(JSON.stringify({error: {statusCode: err.statusCode, body: err.body}}));
    client.close();
    return;
  }
  var text = '';
  res.on('data', function (chunk) { text += chunk; });
  res.on('end', function () {
    var messages = text.split('\n').filter(function (l) { return l.trim(); }).map(function (l) { return JSON.parse(l); });
    console.log(JSON.stringify({statusCode: res.statusCode, messages: messages}));
    client.close();
  });
});
