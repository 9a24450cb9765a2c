"""Consent: invitations, the hosted consent page, certificates, and the legal basis of each send.

French law (CPCE art. L.100) lets a registered electronic letter reach a non-professional only with
their prior consent. This package collects that consent for the account (an invitation, a page the
bridge hosts, a certificate PDF), keeps the register of co-owners who asked for paper (the
condominium basis, loi n° 65-557 art. 42-1), and decides, for each letter, which basis allows it.
See docs/consent.md for the texts and where we chose the safe side.
"""
