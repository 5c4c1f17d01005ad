-- Atomic: refreshable materialized views (the scheduled reconcile views) need it.
CREATE DATABASE IF NOT EXISTS {{db}} ENGINE = Atomic;
