"""IMGAPI's remote imports run as import jobs (AdminImportRemoteImage, ImportFromDatacenter) and the
file fetches of AddImageFile from a source and AddImageFileFromUrl (no job)."""
