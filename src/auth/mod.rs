//! Authentication exchanges: cleartext, MD5 and SCRAM-SHA-256.
