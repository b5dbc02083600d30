"""Offline tools: dataset building, training, export and evaluation of the project's models.

These import torch and friends; the appliance package never imports anything from here.
"""
