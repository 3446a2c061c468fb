"""Reading the buzz desktop's data: its app-data files and the OS keyring item of its keys.

Here, the names buzz is found by, which the command line's help quotes without
loading either reader: its app identifier (the name of its app-data directory,
:mod:`adapters.buzz.appdata`) and the service of its keyring item
(:mod:`adapters.buzz.keyring`).
"""

APP_IDENTIFIER = "xyz.block.buzz.app"
KEYRING_SERVICE = "buzz-desktop"
