"""The ``mils`` command line: one module per command group, each registering its subcommands.

The algorithm's package (``mils/``) never imports this one, the flows or the judging code.
"""
