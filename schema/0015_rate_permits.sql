-- Shared send rates kept in PostgreSQL, for brokers that keep none (RabbitMQ).
-- One row per rate and wall-clock second: how many permits were taken in it
-- (the Redis broker's BucketRateLimiter does the same with one-second buckets
-- in Redis). UNLOGGED: a rate's past is worth nothing after a crash.
CREATE UNLOGGED TABLE rate_permits (
    name text NOT NULL,
    second bigint NOT NULL,
    taken integer NOT NULL,
    PRIMARY KEY (name, second)
);
