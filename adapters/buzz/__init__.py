"""Reading the buzz desktop's data: its app-data files and the OS keyring item of its keys."""
