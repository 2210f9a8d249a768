//! Wire formats as typed views over byte buffers. Parse and emit are symmetric.
