"""Workers on any number of machines sharing one PostgreSQL shelf: the team setup.

PostgreSQL is both the shelf and the coordination point. Crawl jobs are rows of
`docshelf_jobs`; the work of each is a set of tasks in procrastinate's queue (a
maintained PostgreSQL task queue) that any worker may take:

- `queue`: the procrastinate app and its schema;
- `jobs`: `QueueJobs`, the job list `serve`, `mcp --allow-write` and `add --queue` write to;
- `tasks`: what a worker runs: open a site, fetch a batch of pages, embed a batch of chunks, finish;
- `frontier`: the crawl's URLs, outcomes and embedding claims, in the database;
- `worker`: `run_worker`, the `docshelf worker` process.
"""

from docshelf.workers.jobs import QueueJobs
from docshelf.workers.worker import run_worker

__all__ = ["QueueJobs", "run_worker"]
