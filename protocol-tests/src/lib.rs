//! Shared support for pgdblink's protocol tests: transcript parsing and replay, a scripted fake
//! server, and access to the throwaway PostgreSQL cluster.
