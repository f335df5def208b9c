"""Shared kernel of droproom's domains: coded errors, outgoing events, the
hash-chained event log. It imports nothing of ours and no framework."""
