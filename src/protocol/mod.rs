//! The sans-IO wire codec: frontend messages encoded, backend messages decoded zero-copy.
