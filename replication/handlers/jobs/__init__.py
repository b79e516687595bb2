"""Replication jobs: the manager of a service's jobs, the runner of one job, what a job is."""
