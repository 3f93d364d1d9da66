"""SYNC: push to and pull from FHIR servers, retraction and the outbox worker. Pure logic over the
core; it reaches the FHIR client and the store only through the objects the service passes in, and
imports no flask, requests, sqlalchemy or click.
"""
