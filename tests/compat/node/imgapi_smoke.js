// Drives the real node IMGAPI client (sdc-clients) through a full image lifecycle.
var IMGAPI = require('sdc-clients').IMGAPI;
var fs = require('fs');
var assert = require('assert');
var crypto = require('crypto');
var url = process.argv[2], junk = process.argv[3], icon = process.argv[4], out = process.argv[5];
// IMGAPI_SMOKE (JSON): mode (dc|public|private), listed (images ListImages state=all must return,
// more than one page of 1000), and for HTTP Signature auth: user and keyFile (PEM RSA private key).
var cfg = JSON.parse(process.env.IMGAPI_SMOKE || '{}');
var mode = cfg.mode || 'dc';
var opts = {url: url, agent: false};
if (cfg.user) {
  var pem = fs.readFileSync(cfg.keyFile, 'ascii');
  opts.user = cfg.user;
  // The client's pluggable signer: signs the "date: ..." line it builds itself.
  opts.sign = function (str, cb) { cb(null, {algorithm: 'rsa-sha256', signature: crypto.createSign('RSA-SHA256').update(str).sign(pem, 'base64')}); };
}
var client = new IMGAPI(opts);
var OWNER = '86055c40-2547-11e2-8a6b-4bb37edc84ba';
function step(name, fn) { return function (next) { fn(function (err) { if (err) { console.error('FAIL ' + name + ': ' + (err.body ? JSON.stringify(err.body) : err.stack || err)); process.exit(1); } console.log('ok ' + name); next(); }); }; }
var uuid, etag;
var steps = [
  step('ping', function (cb) { client.ping(function (err, pong) { if (!err) { assert.equal(pong.imgapi, true); assert.equal(typeof pong.pid === 'number', mode === 'dc' || !!cfg.user, 'pid only for dc or authenticated: ' + JSON.stringify(pong)); } cb(err); }); }),
  step('createImage', function (cb) { client.createImage({name: 'nodesmoke', version: '1.0.0', type: 'zone-dataset', os: 'smartos', owner: OWNER, public: mode === 'public', tags: {role: 'db', n: 42}}, function (err, img, res) { if (!err) { uuid = img.uuid; assert.equal(img.state, 'unactivated'); etag = res.headers.etag; } cb(err); }); }),
  step('addImageFile', function (cb) { var size = fs.statSync(junk).size; client.addImageFile({uuid: uuid, file: junk, compression: 'bzip2', size: size}, function (err, img) { if (!err) assert.equal(img.files[0].size, size); cb(err); }); }),
  step('activateImage', function (cb) { client.activateImage(uuid, function (err, img) { if (!err) assert.equal(img.state, 'active'); cb(err); }); }),
  step('getImage', function (cb) { client.getImage(uuid, function (err, img, res) { if (!err) { assert.equal(img.uuid, uuid); assert.ok(Array.isArray(img.files)); etag = res.headers.etag; } cb(err); }); }),
  step('updateImage with If-Match', function (cb) { client.updateImage(uuid, {description: 'updated by node'}, undefined, {headers: {'If-Match': etag}}, function (err, img) { if (!err) assert.equal(img.description, 'updated by node'); cb(err); }); }),
  step('updateImage with a stale If-Match -> 412', function (cb) { client.updateImage(uuid, {description: 'nope'}, undefined, {headers: {'If-Match': 'stale'}}, function (err) { assert.ok(err && err.statusCode === 412, 'expected 412, got ' + (err && err.statusCode)); cb(); }); }),
  step('getImageFile (Content-MD5 verified by the client)', function (cb) { client.getImageFile(uuid, out, function (err) { if (!err) assert.deepEqual(fs.readFileSync(out), fs.readFileSync(junk)); cb(err); }); }),
  step('addImageIcon', function (cb) { client.addImageIcon({uuid: uuid, file: icon, contentType: 'image/jpeg', size: fs.statSync(icon).size}, function (err, img) { if (!err) assert.equal(img.icon, true); cb(err); }); }),
  step('getImageIcon', function (cb) { client.getImageIcon(uuid, out + '.icon', function (err) { if (!err) assert.deepEqual(fs.readFileSync(out + '.icon'), fs.readFileSync(icon)); cb(err); }); }),
  step('addImageAcl', function (cb) { client.addImageAcl(uuid, ['91ba0e64-2547-11e2-a972-df579e5fddb3'], function (err, img) { if (!err) assert.deepEqual(img.acl, ['91ba0e64-2547-11e2-a972-df579e5fddb3']); cb(err); }); }),
  step('listImages with tag filter', function (cb) { client.listImages({name: 'nodesmoke', 'tag.n': 42}, function (err, imgs) { if (!err) assert.equal(imgs.length, 1); cb(err); }); }),
  step('listImages paginated (no limit: marker loop over pages of 1000)', function (cb) { client.listImages({state: 'all'}, function (err, imgs) { if (!err) { assert.ok(cfg.listed > 1000, 'the stack must hold more than one page'); assert.equal(imgs.length, cfg.listed); var seen = {}; imgs.forEach(function (i) { assert.ok(!seen[i.uuid], 'duplicate ' + i.uuid); seen[i.uuid] = true; }); assert.ok(seen[uuid]); } cb(err); }); }),
  step('listImages with a limit (one page, no marker loop)', function (cb) { client.listImages({state: 'all', limit: 7}, function (err, imgs) { if (!err) assert.equal(imgs.length, 7); cb(err); }); }),
  step('getImage 404 -> ResourceNotFound', function (cb) { client.getImage('00000000-0000-4000-8000-000000000001', function (err) { assert.ok(err && err.statusCode === 404 && err.body.code === 'ResourceNotFound'); cb(); }); }),
  step('createImage invalid -> ValidationFailed', function (cb) { client.createImage({name: 'bad name!', version: '1', type: 'zvol', os: 'beos', owner: OWNER}, function (err) { assert.ok(err && err.statusCode === 422 && err.body.code === 'ValidationFailed', JSON.stringify(err && err.body)); cb(); }); }),
  step('disableImage', function (cb) { client.disableImage(uuid, function (err, img) { if (!err) assert.equal(img.state, 'disabled'); cb(err); }); }),
  step('enableImage', function (cb) { client.enableImage(uuid, function (err, img) { if (!err) assert.equal(img.state, 'active'); cb(err); }); }),
  step('deleteImageIcon', function (cb) { client.deleteImageIcon(uuid, function (err, img) { if (!err) assert.equal(img.icon, undefined); cb(err); }); }),
  step('deleteImage', function (cb) { client.deleteImage(uuid, function (err) { cb(err); }); }),
];
(function run(i) { if (i === steps.length) { console.log('all ' + steps.length + ' steps passed'); client.close(); return; } steps[i](function () { run(i + 1); }); })(0);
