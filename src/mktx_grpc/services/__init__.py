"""The gRPC servicers: proto in, domain or operation call, proto out. No SQL and no
transaction control here (the unit of work gives each RPC its connection). Only
``server.py`` imports them."""
