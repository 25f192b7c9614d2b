"""Conversions between protobuf messages and the values domain and store use."""
