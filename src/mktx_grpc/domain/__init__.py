"""Rules that need no I/O: state machines, validation rules, template rendering, the
segment compiler. Plain values in, plain values (or typed errors) out."""
