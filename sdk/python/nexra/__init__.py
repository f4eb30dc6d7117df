"""`nexra` is an alias of `nexra_sdk` (the seed's LangGraph example imports
`from nexra import NexraClient`)."""
from nexra_sdk import *  # noqa: F401,F403
from nexra_sdk import __all__, __version__  # noqa: F401
