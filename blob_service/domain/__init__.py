"""The blob service's rules without I/O: ids, upload and blob records, resumable digests and their
hashing pipeline, the errors it raises."""
