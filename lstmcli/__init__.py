"""lstmcli: train and use LSTM forecasting models from CSV files.

Importing the package imports no torch, pandas or scikit-learn, so the CLI starts fast.
"""

__version__ = "0.1.0"
