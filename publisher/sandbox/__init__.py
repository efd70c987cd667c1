"""A local imitation of Facebook, Zalo OA, WordPress and the webhook CMS, for tests and demos."""
