// The demo agent's remote-desktop join link lands here (protocol.md §2.5).
document.getElementById('session').textContent = new URLSearchParams(location.search).get('session') || 'unknown';
