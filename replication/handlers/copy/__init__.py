"""Copying one image (and its missing origins) from a source into this datacenter: the manifest, the
file (resumable), the icon, the metadata; paced by a job's bandwidth limit."""
