"""photo_guard as a plugin of photo applications that are themselves pluggy hosts."""
