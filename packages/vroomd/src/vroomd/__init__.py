"""vroomd: the VROOM daemon, serving real PTYs, the agent's Chromium and its media over OpenMux"""

__version__ = "0.1.0"
