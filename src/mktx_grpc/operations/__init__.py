"""Operations that are more than one store call and need their own connections:
they span several short transactions or call X (or the model) between them, or two
servicers (or a servicer and a worker) share them.

Servicers call them and map their results to protobuf; workers call them too. They
reach the database only through ``core.db.use_connection``, so each transaction has
exactly one owner, and they never hold a transaction across an external call.
"""
