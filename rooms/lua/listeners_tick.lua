--@include rooms/listeners_note
-- listeners_tick: note the listeners present now (the stats tick while the
-- room is live, so a quiet minute still has its listeners).
-- KEYS: role_counts, stats, listener minutes. ARGV: now. Returns the listeners now.
return note_listeners(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
