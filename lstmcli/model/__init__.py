"""The fitted model: the network, priors, Theta, the combination, intervals, the forecaster and
its checkpoint.
"""
