//! HTTP/1.1 codec on httparse and the `http` types (server and client sides).
