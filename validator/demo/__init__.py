"""The bundled demo partner: IdP metadata and its CRM record."""
