"""The phone line: a SIP endpoint (pjsua2) carrying voice sessions over G.711 at 8 kHz."""
