"""Collation: does every locale sort text the same way on the candidate image as on the baseline?

Parts: :mod:`.corpus` (the strings), :mod:`.strategies` (hypothesis strategies for random
strings), :mod:`.sorter` (the in-guest C sorter, built on the host), :mod:`.guest` (running it in
a guest, listing locales, hashing locale data files), :mod:`.diff` (what moved between two
orders), :mod:`.blocks` (Unicode blocks), :mod:`.compare` (the whole comparison and findings).
"""
