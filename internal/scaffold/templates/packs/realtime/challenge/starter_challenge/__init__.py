"""The starter-challenge package: the model interface (cruncher.py) participants build on."""
