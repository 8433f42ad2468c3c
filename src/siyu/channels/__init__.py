"""WeChat channels: the official account and WeCom callbacks, parametric QR codes."""
