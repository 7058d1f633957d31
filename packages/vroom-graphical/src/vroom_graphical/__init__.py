"""VROOM-Graphical 0.1: sans-IO handshake, modes, control messages and packed input codecs over OpenMux"""

__version__ = "0.1.0"
