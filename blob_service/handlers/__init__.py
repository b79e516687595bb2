"""The blob operations (``operations.BlobService``): one WriteChunks stream applied to an upload
(``writing``), per-upload locks, the guard of the threads streams hold, the expired-upload reaper."""
