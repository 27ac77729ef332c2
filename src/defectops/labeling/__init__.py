"""Labelling: which commits fix defects, which induced them (SZZ), and when each label became known."""
