//! A throwaway PostgreSQL cluster for tests, benchmarks and the binary.
