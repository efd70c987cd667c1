"""Publishing due posts: the dispatcher (claims, calls, fenced outcomes), its outcome rules,
retries, channel blocks and probes, the daemon that wakes it, and rehearsals on a copy."""
