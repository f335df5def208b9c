"""Outside services run by the app itself when none is configured: Redis
(`redis_embed`), Stripe (`stripe_embed`, localstripe), their restarts
(`supervise`) and the private data directory (`datadir`). No feature logic.
"""
