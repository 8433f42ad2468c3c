"""channels logic, one module per area: settings, crypto (signatures, decryption), the WeChat API
client, QR codes and contact ways, the two callbacks (official account, WeCom) and the figures."""
