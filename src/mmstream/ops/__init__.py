"""Operations: logging (and later metrics and the HTTP endpoints)."""
