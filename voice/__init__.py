"""Voice: Vosk speech recognition, speech synthesis, voice sessions, the voice web app and phone."""
