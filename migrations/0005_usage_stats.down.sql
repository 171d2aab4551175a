DROP TABLE IF EXISTS usage_stats;
