"""Request validation rules, declared once per request type.

Each rule function takes a request message and returns every FieldViolation it
finds, so a client learns about all bad fields in one round trip. The method table
(`mktx_grpc.methods`) binds rules to RPCs and the validation interceptor runs them.
"""
