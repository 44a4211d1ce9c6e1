// Pay an order from the browser's wallet (EIP-1193): switch or add the order's network,
// send exactly the transaction the server prepared, then report its hash to Kibo.
"use strict";

(function () {
  const panel = document.getElementById("payment");
  if (!panel) return;
  const button = panel.querySelector("[data-pay-wallet]");
  const status = panel.querySelector("[data-pay-status]");
  const result = panel.querySelector("[data-deposit-result]");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const data = panel.dataset;
  const text = (name) => data["text" + name[0].toUpperCase() + name.slice(1)];
  const say = (message) => { status.textContent = message; };
  const chainHex = "0x" + Number(data.chainId).toString(16);

  if (!window.ethereum) {
    say(text("noWallet"));
    panel.querySelector("[data-manual]").open = true;
    return;
  }
  button.hidden = false;

  async function useOrdersNetwork() {
    if ((await window.ethereum.request({ method: "eth_chainId" })).toLowerCase() === chainHex) return;
    say(text("switching"));
    try {
      await window.ethereum.request({
        method: "wallet_switchEthereumChain",
        params: [{ chainId: chainHex }],
      });
    } catch (problem) {
      if (problem.code !== 4902) throw problem;  // 4902: the wallet does not know the chain
      await window.ethereum.request({
        method: "wallet_addEthereumChain",
        params: [{
          chainId: chainHex,
          chainName: data.chainName,
          rpcUrls: [data.rpcUrl],
          nativeCurrency: { name: data.nativeSymbol, symbol: data.nativeSymbol, decimals: 18 },
          blockExplorerUrls: data.explorerUrl ? [data.explorerUrl] : undefined,
        }],
      });
    }
  }

  async function report(hash) {
    const answer = await fetch(data.depositUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "HX-Request": "true" },
      body: new URLSearchParams({ tx_hash: hash }),
    });
    result.innerHTML = await answer.text();
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      say(text("connecting"));
      const [account] = await window.ethereum.request({ method: "eth_requestAccounts" });
      if (account.toLowerCase() !== data.wallet.toLowerCase()) {
        say(`${text("account")} ${data.wallet}`);
        button.disabled = false;
        return;
      }
      await useOrdersNetwork();
      say(text("confirm"));
      const hash = await window.ethereum.request({
        method: "eth_sendTransaction",
        params: [{
          from: account,
          to: data.txTo,
          value: "0x" + BigInt(data.txValue).toString(16),
          data: data.txData,
        }],
      });
      say(text("sent"));
      await report(hash);
    } catch (problem) {
      const rejected = problem && problem.code === 4001;
      say(rejected ? text("rejected") : `${text("failed")} ${problem.message || problem}`);
      button.disabled = false;
    }
  });
})();
