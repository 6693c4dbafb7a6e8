//! Shared support for pgdblink's protocol tests: server-side message encoding ([`wire`]), transcripts
//! replayed under every chunking ([`transcript`]), a scripted fake server, and the throwaway cluster.

pub mod fake_server;
pub mod transcript;
pub mod wire;
