"""Hyperparameter search (`har tune`): search spaces from params.yaml (``space``) and the Optuna
study around them (``study``). The stage wiring (data, MLflow, files) is in har/stages/tune.py."""
