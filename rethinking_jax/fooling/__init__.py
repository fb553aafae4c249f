"""Fooling trained members: minimal adversarial noise, gradient ascent, MAP-Elites evolution."""
