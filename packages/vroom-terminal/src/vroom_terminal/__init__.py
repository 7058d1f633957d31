"""VROOM-Terminal 0.2: sans-IO client and server state machines for remote terminals over OpenMux, and the vroom term CLI"""

__version__ = "0.1.0"
