//! Shared support for pgdblink's protocol tests: server-side message encoding ([`wire`]), transcripts
//! replayed under every chunking ([`transcript`]), a scripted fake server, helpers shared by the test files ([`helpers`]), the generated fuzz seed
//! corpora ([`corpus`]), and the throwaway cluster.

pub mod corpus;
pub mod fake_server;
pub mod helpers;
pub mod transcript;
pub mod wire;
