//! Thread-count sweeps: throughput against threads, with a table, JSON and an SVG chart.
